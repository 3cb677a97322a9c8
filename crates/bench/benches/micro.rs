//! Micro benchmarks: rule evaluation (a hand-written Rust predicate, the engine's compiled native
//! path, and Rhai), whole decisions with the shipped rules, feature computation, and rendering
//! the shipped e-mail templates.
//!
//! Run with `cargo bench -p tiercare-bench` (optionally a filter: `cargo bench -p tiercare-bench
//! -- condition`).

use std::hint::black_box;
use std::path::Path;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tiercare_engine::{
    Feature, FeatureType, RuleFile, RuleSet, Snapshot, TemplateContext, TemplateFile,
    load_templates,
};
use tiercare_scheduler::demo::{DemoSpec, write_demo};
use tiercare_scheduler::ingest::{ImportRequest, import_file};
use tiercare_store::{Store, Window};

/// Customers per benchmark iteration.
const CUSTOMERS: usize = 1024;

/// The simple condition benchmarked three ways.
const CONDITION: &str =
    "revenue_window >= 1000.0 && orders_window > 3 || days_since_last_order < 30";

/// The condition as native Rust over the same snapshot.
fn native_predicate(snapshot: &Snapshot) -> bool {
    let float = |feature| snapshot.float(feature).unwrap_or(f64::NAN);
    let int = |feature| snapshot.int(feature).unwrap_or(0);
    float(Feature::RevenueWindow) >= 1000.0 && int(Feature::OrdersWindow) > 3
        || int(Feature::DaysSinceLastOrder) < 30
}

fn rules(files: &[(&str, &str)]) -> RuleSet {
    load(
        files
            .iter()
            .map(|(path, text)| RuleFile::new((*path).to_owned(), (*text).to_owned()))
            .collect(),
    )
}

fn load(files: Vec<RuleFile>) -> RuleSet {
    match tiercare_engine::load_rules(&files) {
        Ok(loaded) => loaded.rules,
        Err(diagnostics) => panic!("{}", tiercare_engine::render_all(&diagnostics, false)),
    }
}

/// The workspace's default tiering rules, as `tiercare init` writes them (the follow-up rules
/// decide nothing here).
fn default_rules() -> RuleSet {
    let files: Vec<RuleFile> = tiercare_scheduler::workspace::DEFAULT_RULES
        .iter()
        .filter(|(name, _)| {
            name.ends_with(".yaml") && !name.contains('/') && *name != "followups.yaml"
        })
        .map(|(name, text)| RuleFile::new(format!("rules/{name}"), *text))
        .collect();
    assert_eq!(files.len(), 4, "tiers, levels, rfm, worthless");
    load(files)
}

/// Customers with varied, plausible features (a fixed xorshift sequence).
fn customers() -> Vec<Snapshot> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut random = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..CUSTOMERS)
        .map(|i| {
            let mut snapshot = Snapshot::new();
            for feature in Feature::all() {
                let r = random();
                match feature.spec().ty {
                    FeatureType::Int => snapshot.set_int(feature, (r % 400) as i64),
                    FeatureType::Time => {
                        snapshot.set_time(feature, Some(1_700_000_000 + (r % 50_000_000) as i64));
                    }
                    FeatureType::Float if feature.spec().optional => {
                        snapshot.set_optional_float(feature, Some((r % 500) as f64 / 100.0));
                    }
                    FeatureType::Float => {
                        snapshot.set_float(feature, (r % 1_000_000) as f64 / 300.0)
                    }
                    FeatureType::Bool => snapshot.set_bool(feature, r % 2 == 0),
                    FeatureType::Text => snapshot.set_text(feature, ["A", "B", "C"][i % 3]),
                    FeatureType::Map => {}
                }
            }
            // Shares and scores in their real ranges, so every tier and segment is reached.
            snapshot.set_float(
                Feature::RevenueShareBefore,
                (random() % 1000) as f64 / 1000.0,
            );
            for feature in [Feature::RScore, Feature::FScore, Feature::MScore] {
                snapshot.set_int(feature, 1 + (random() % 5) as i64);
            }
            snapshot
        })
        .collect()
}

fn condition(c: &mut Criterion) {
    let rules = rules(&[(
        "rules/tiers.yaml",
        &format!(
            "tiering:\n  window: 365d\n  tiers:\n    - id: A\n      when: {CONDITION}\n    - id: C\n      when: true\n"
        ),
    )]);
    let customers = customers();
    let expected: Vec<bool> = customers.iter().map(native_predicate).collect();
    let mut group = c.benchmark_group("condition");
    group.throughput(Throughput::Elements(CUSTOMERS as u64));
    group.bench_function("native_rust", |b| {
        b.iter(|| {
            customers
                .iter()
                .filter(|snapshot| native_predicate(black_box(snapshot)))
                .count()
        });
    });
    for (name, native) in [("compiled_native", true), ("rhai", false)] {
        let mut evaluator = rules.evaluator();
        evaluator.set_native(native);
        let answers: Vec<bool> = customers
            .iter()
            .map(|s| {
                evaluator
                    .tier_condition(0, s)
                    .expect("a tier")
                    .expect("no error")
            })
            .collect();
        assert_eq!(
            answers, expected,
            "{name} disagrees with the native predicate"
        );
        group.bench_function(name, |b| {
            b.iter(|| {
                customers
                    .iter()
                    .filter(|snapshot| {
                        evaluator
                            .tier_condition(0, black_box(snapshot))
                            .expect("a tier")
                            .unwrap_or(false)
                    })
                    .count()
            });
        });
    }
    group.finish();
}

fn decision(c: &mut Criterion) {
    let rules = default_rules();
    let customers = customers();
    let mut group = c.benchmark_group("decision_default_rules");
    group.throughput(Throughput::Elements(CUSTOMERS as u64));
    for (name, native) in [("compiled_native", true), ("rhai", false)] {
        let mut evaluator = rules.evaluator();
        evaluator.set_native(native);
        let mut decision = tiercare_engine::Decision::default();
        group.bench_function(name, |b| {
            b.iter(|| {
                for snapshot in &customers {
                    evaluator.evaluate_into(black_box(snapshot), &mut decision);
                }
            });
        });
    }
    group.finish();
}

/// A demo database of `customers` customers in `dir`, as `tiercare demo` fills it.
fn demo_store(dir: &Path, customers: u64) -> Store {
    let spec = DemoSpec {
        customers,
        ..DemoSpec::default()
    };
    let (files, _) = write_demo(&dir.join("data"), &spec, &mut |_| {}).expect("demo data");
    let mut store = Store::create(&dir.join("tiercare.db")).expect("database");
    for (kind, file) in files.in_import_order() {
        let request = ImportRequest {
            kind,
            file,
            mapping: None,
            strict: false,
            format: None,
            timezone: chrono_tz::UTC,
            default_region: None,
        };
        import_file(&mut store, &request, &mut |_| {}).expect("import");
    }
    store
}

fn features(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut group = c.benchmark_group("features");
    group.sample_size(10);
    for customers in [1_000_u64, 10_000] {
        let sub = dir.path().join(customers.to_string());
        let store = demo_store(&sub, customers);
        let at = DemoSpec::default().end.timestamp();
        group.throughput(Throughput::Elements(customers));
        group.bench_with_input(
            BenchmarkId::new("all_customers", customers),
            &store,
            |b, store| {
                b.iter(|| {
                    let mut seen = 0_u64;
                    store
                        .for_each_features(at, Window::Seconds(365 * 86_400), &mut |f| {
                            black_box(f);
                            seen += 1;
                        })
                        .expect("features");
                    assert_eq!(seen, customers);
                });
            },
        );
    }
    group.finish();
}

/// Every shipped template, as `tiercare init` writes them.
fn shipped_templates() -> Vec<TemplateFile> {
    tiercare_scheduler::workspace::DEFAULT_TEMPLATES
        .iter()
        .map(|(name, text)| TemplateFile::new(format!("templates/{name}"), *text))
        .collect()
}

/// One e-mail rendered from each shipped template (subject, text part, and the HTML part where
/// there is one) for the documented sample customer.
fn templates(c: &mut Criterion) {
    let loaded = load_templates(&shipped_templates());
    assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);
    let templates = loaded.templates;
    let context = TemplateContext::sample();
    let names: Vec<String> = templates.names().map(str::to_owned).collect();
    assert_eq!(names.len(), 5, "{names:?}");
    let mut group = c.benchmark_group("templates");
    for name in &names {
        group.throughput(Throughput::Elements(1));
        group.bench_with_input(BenchmarkId::new("render", name), name, |b, name| {
            b.iter(|| black_box(templates.render(name, &context).expect("renders")));
        });
    }
    group.finish();
}

criterion_group!(benches, condition, decision, features, templates);
criterion_main!(benches);
