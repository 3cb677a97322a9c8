//! Fit speed: BG/NBD and Gamma-Gamma on 1,000,000 synthetic customers over three years of days
//! (`cargo bench -p tiercare-growth`). The likelihood is summed over distinct `(x, t_x, T)`, so
//! the cost follows the distinct summaries; the figures are in BENCHMARKS.md.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tiercare_growth::{Summary, bgnbd, gamma_gamma};

/// Customers drawn from the BG/NBD process itself (r = 0.25, α = 30 days, a = 0.8, b = 2.5)
/// with a small deterministic generator, first purchases spread over 1,095 days.
fn customers(n: usize) -> Vec<Summary> {
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let mut uniform = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let gamma = |shape: f64, scale: f64, u: &mut dyn FnMut() -> f64| {
        // Marsaglia-Tsang with the shape < 1 boost.
        let (boost, shape) = if shape < 1.0 {
            (u().powf(1.0 / shape), shape + 1.0)
        } else {
            (1.0, shape)
        };
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let z = (-2.0 * u().max(1e-300).ln()).sqrt() * (2.0 * std::f64::consts::PI * u()).cos();
            let v = (1.0 + c * z).powi(3);
            if v > 0.0 && u().max(1e-300).ln() < 0.5 * z * z + d - d * v - d * v.ln() {
                return boost * d * v * scale;
            }
        }
    };
    (0..n)
        .map(|_| {
            let age = 1 + (uniform() * 1_095.0) as u32;
            let rate = gamma(0.25, 1.0 / 30.0, &mut uniform);
            let ga = gamma(0.8, 1.0, &mut uniform);
            let gb = gamma(2.5, 1.0, &mut uniform);
            let dropout = ga / (ga + gb);
            let (mut t, mut x, mut last) = (0.0, 0u32, 0.0);
            // After every purchase, the first included, the customer may drop out.
            while uniform() >= dropout {
                t += -uniform().max(1e-300).ln() / rate;
                if t > f64::from(age) {
                    break;
                }
                x += 1;
                last = t;
            }
            let recency = (last as u32).min(age);
            let repeat_mean_value = (x > 0).then(|| 10.0 + (uniform() * 4_000.0).round() / 100.0);
            Summary {
                frequency: x,
                recency: if x > 0 { recency } else { 0 },
                age,
                repeat_mean_value,
            }
        })
        .collect()
}

fn fits(c: &mut Criterion) {
    let data = customers(1_000_000);
    let mut keys: Vec<(u32, u32, u32)> = data
        .iter()
        .map(|s| (s.frequency, s.recency, s.age))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    eprintln!("distinct (x, t_x, T): {}", keys.len());
    let started = std::time::Instant::now();
    let fit = bgnbd::fit(&data).unwrap();
    eprintln!("one BG/NBD fit: {:?}, {:?}", started.elapsed(), fit);
    let mut group = c.benchmark_group("fit_1m_customers");
    group.sample_size(10);
    group.bench_function("bgnbd", |b| {
        b.iter(|| bgnbd::fit(black_box(&data)).unwrap())
    });
    // The previous night's parameters: the same shop without its last 1% of customers.
    let previous = bgnbd::fit(&data[..990_000]).unwrap().params;
    let warm = bgnbd::fit_from(&data, Some(&previous)).unwrap();
    eprintln!(
        "BG/NBD iterations: cold {}, warm {}",
        fit.quality.iterations, warm.quality.iterations
    );
    group.bench_function("bgnbd_warm", |b| {
        b.iter(|| bgnbd::fit_from(black_box(&data), Some(&previous)).unwrap())
    });
    group.bench_function("gamma_gamma", |b| {
        b.iter(|| gamma_gamma::fit(black_box(&data)).unwrap())
    });
    group.finish();
}

criterion_group!(benches, fits);
criterion_main!(benches);
