//! Nelder-Mead minimisation (Lagarias et al. 1998 coefficients), restarted from its own result
//! until a restart no longer improves, which guards against the simplex collapsing early.

/// The outcome of [`minimize`].
#[derive(Debug, Clone)]
pub(crate) struct Minimum {
    /// The best point found.
    pub x: Vec<f64>,
    /// The objective there.
    pub value: f64,
    /// Simplex iterations over all restarts.
    pub iterations: u32,
    /// Whether the last restart met the tolerances (else the iteration budget ran out).
    pub converged: bool,
}

/// Tolerances and budget.
const X_TOL: f64 = 1e-8;
const F_TOL: f64 = 1e-11;
const MAX_ITERATIONS: u32 = 4_000;
const MAX_RESTARTS: u32 = 8;

/// Minimises `f` from `start`. Non-finite values count as +∞ (outside the model's domain).
/// The first simplex steps `step` along each axis (in log-parameters: 0.5 is a factor of 1.6).
pub(crate) fn minimize(f: impl Fn(&[f64]) -> f64, start: &[f64], step: f64) -> Minimum {
    let eval = |x: &[f64]| {
        let v = f(x);
        if v.is_finite() { v } else { f64::INFINITY }
    };
    let mut best = start.to_vec();
    let mut best_value = eval(&best);
    let mut iterations = 0;
    let mut converged = false;
    for _ in 0..MAX_RESTARTS {
        let (x, value, its, ok) = simplex(
            &eval,
            &best,
            step,
            MAX_ITERATIONS.saturating_sub(iterations),
        );
        iterations += its;
        converged = ok;
        let improved = best_value - value > F_TOL * (1.0 + best_value.abs());
        if value <= best_value {
            best = x;
            best_value = value;
        }
        if !improved || !ok {
            break;
        }
    }
    Minimum {
        x: best,
        value: best_value,
        iterations,
        converged,
    }
}

/// Newton's method from `start` on `f` with its analytic gradient `gradient`, the Hessian from
/// forward differences of the gradient, and a halving line search: `Some(minimum)` once the
/// step is negligible, `None` if a step is not a descent direction or fails to decrease `f`
/// (the caller falls back to the simplex).
pub(crate) fn newton<const N: usize>(
    f: impl Fn(&[f64]) -> f64,
    gradient: impl Fn(&[f64]) -> [f64; N],
    start: &[f64],
) -> Option<Minimum> {
    newton_with_curvature(f, &gradient, &gradient, start)
}

/// [`newton`] with the Hessian from differences of another function's gradient, `curvature`
/// (BG/NBD passes the gradient of an even sample of its data: the same mean likelihood's
/// curvature at a fraction of the cost), while the step and its test use `gradient` and `f`.
pub(crate) fn newton_with_curvature<const N: usize>(
    f: impl Fn(&[f64]) -> f64,
    gradient: impl Fn(&[f64]) -> [f64; N],
    curvature: impl Fn(&[f64]) -> [f64; N],
    start: &[f64],
) -> Option<Minimum> {
    let mut x = start.to_vec();
    let mut fx = f(&x);
    if !fx.is_finite() {
        return None;
    }
    for iteration in 1..=50 {
        let g = gradient(&x);
        let g_curvature = curvature(&x);
        let mut h = [[0.0; N]; N];
        for j in 0..N {
            let step = 1e-6 * (1.0 + x[j].abs());
            let mut moved = x.clone();
            moved[j] += step;
            let gj = curvature(&moved);
            for i in 0..N {
                h[i][j] = (gj[i] - g_curvature[i]) / step;
            }
        }
        let h: [[f64; N]; N] =
            std::array::from_fn(|i| std::array::from_fn(|j| 0.5 * (h[i][j] + h[j][i])));
        let d = solve(h, g.map(|v| -v))?;
        if d.iter().zip(&g).map(|(a, b)| a * b).sum::<f64>() >= 0.0 {
            return None;
        }
        let mut scale = 1.0;
        let (next, fnext) = loop {
            let next: Vec<f64> = x.iter().zip(&d).map(|(a, b)| a + scale * b).collect();
            let fnext = f(&next);
            if fnext <= fx || scale < 1e-6 {
                break (next, fnext);
            }
            scale *= 0.5;
        };
        if fnext.is_nan() || fnext > fx {
            return None;
        }
        let moved = d.iter().map(|v| (v * scale).abs()).fold(0.0, f64::max);
        x = next;
        fx = fnext;
        if moved < 1e-9 {
            return Some(Minimum {
                x,
                value: fx,
                iterations: iteration,
                converged: true,
            });
        }
    }
    None
}

/// Solves `h d = g` by Gaussian elimination with partial pivoting (`None` if singular).
pub(crate) fn solve<const N: usize>(mut h: [[f64; N]; N], mut g: [f64; N]) -> Option<[f64; N]> {
    for col in 0..N {
        let pivot = (col..N).max_by(|&i, &j| h[i][col].abs().total_cmp(&h[j][col].abs()))?;
        if h[pivot][col].abs() < 1e-300 {
            return None;
        }
        h.swap(col, pivot);
        g.swap(col, pivot);
        for row in col + 1..N {
            let factor = h[row][col] / h[col][col];
            let pivot_row = h[col];
            for (cell, p) in h[row].iter_mut().zip(pivot_row).skip(col) {
                *cell -= factor * p;
            }
            g[row] -= factor * g[col];
        }
    }
    let mut d = [0.0; N];
    for row in (0..N).rev() {
        let rest: f64 = (row + 1..N).map(|k| h[row][k] * d[k]).sum();
        d[row] = (g[row] - rest) / h[row][row];
    }
    d.iter().all(|v| v.is_finite()).then_some(d)
}

fn simplex(
    f: &impl Fn(&[f64]) -> f64,
    start: &[f64],
    step: f64,
    budget: u32,
) -> (Vec<f64>, f64, u32, bool) {
    let n = start.len();
    let (alpha, gamma, rho, sigma) = (1.0, 2.0, 0.5, 0.5);
    let mut points: Vec<Vec<f64>> = vec![start.to_vec()];
    for i in 0..n {
        let mut p = start.to_vec();
        p[i] += step;
        points.push(p);
    }
    let mut values: Vec<f64> = points.iter().map(|p| f(p)).collect();
    let mut its = 0;
    while its < budget {
        its += 1;
        let mut order: Vec<usize> = (0..=n).collect();
        order.sort_by(|&i, &j| values[i].total_cmp(&values[j]));
        points = order.iter().map(|&i| points[i].clone()).collect();
        values = order.iter().map(|&i| values[i]).collect();
        let spread_f = (values[n] - values[0]).abs();
        let spread_x = points[1..]
            .iter()
            .flat_map(|p| p.iter().zip(&points[0]).map(|(a, b)| (a - b).abs()))
            .fold(0.0, f64::max);
        if values[0].is_finite() && spread_f <= F_TOL * (1.0 + values[0].abs()) && spread_x <= X_TOL
        {
            return (points.swap_remove(0), values[0], its, true);
        }
        let centroid: Vec<f64> = (0..n)
            .map(|k| points[..n].iter().map(|p| p[k]).sum::<f64>() / n as f64)
            .collect();
        let towards = |t: f64| -> Vec<f64> {
            centroid
                .iter()
                .zip(&points[n])
                .map(|(c, w)| c + t * (c - w))
                .collect()
        };
        let reflected = towards(alpha);
        let fr = f(&reflected);
        if fr < values[0] {
            let expanded = towards(gamma);
            let fe = f(&expanded);
            if fe < fr {
                points[n] = expanded;
                values[n] = fe;
            } else {
                points[n] = reflected;
                values[n] = fr;
            }
        } else if fr < values[n - 1] {
            points[n] = reflected;
            values[n] = fr;
        } else {
            let (contracted, fc) = if fr < values[n] {
                let c = towards(rho * alpha);
                let fc = f(&c);
                (c, fc)
            } else {
                let c = towards(-rho);
                let fc = f(&c);
                (c, fc)
            };
            if fc < values[n].min(fr) {
                points[n] = contracted;
                values[n] = fc;
            } else {
                for i in 1..=n {
                    let shrunk: Vec<f64> = points[i]
                        .iter()
                        .zip(&points[0])
                        .map(|(p, b)| b + sigma * (p - b))
                        .collect();
                    values[i] = f(&shrunk);
                    points[i] = shrunk;
                }
            }
        }
    }
    let best = (0..=n)
        .min_by(|&i, &j| values[i].total_cmp(&values[j]))
        .unwrap_or(0);
    (points[best].clone(), values[best], its, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_rosenbrock_minimum() {
        let rosen = |x: &[f64]| 100.0 * (x[1] - x[0] * x[0]).powi(2) + (1.0 - x[0]).powi(2);
        let m = minimize(rosen, &[-1.2, 1.0], 0.5);
        assert!(m.converged);
        assert!(
            (m.x[0] - 1.0).abs() < 1e-6 && (m.x[1] - 1.0).abs() < 1e-6,
            "{:?}",
            m.x
        );
    }
}
