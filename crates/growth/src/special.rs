//! Special functions the models need: `ln Γ` and `ln ₂F₁` for `0 <= z < 1`.

/// Lanczos coefficients (g = 7, n = 9), as in Numerical Recipes and Boost's `lanczos13m53`
/// family: relative error below 1e-15 for positive arguments.
const LANCZOS_G: f64 = 7.0;
const LANCZOS: [f64; 9] = [
    0.999_999_999_999_809_9,
    676.520_368_121_885_1,
    -1_259.139_216_722_402_8,
    771.323_428_777_653_1,
    -176.615_029_162_140_6,
    12.507_343_278_686_905,
    -0.138_571_095_265_720_12,
    9.984_369_578_019_572e-6,
    1.505_632_735_149_311_6e-7,
];

/// `ln Γ(x)` for `x > 0` (NaN otherwise).
#[must_use]
pub fn ln_gamma(x: f64) -> f64 {
    if x.is_nan() || x <= 0.0 {
        return f64::NAN;
    }
    if x < 0.5 {
        // Γ(x) = Γ(x + 1) / x keeps the Lanczos sum in its accurate range.
        return ln_gamma(x + 1.0) - x.ln();
    }
    let x = x - 1.0;
    let mut sum = LANCZOS[0];
    for (i, c) in LANCZOS.iter().enumerate().skip(1) {
        sum += c / (x + i as f64);
    }
    let t = x + LANCZOS_G + 0.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

/// The digamma function `ψ(x) = d ln Γ(x) / dx` for `x > 0`: the recurrence up to `x >= 10`,
/// then the asymptotic series (absolute error below 1e-13).
#[must_use]
pub fn digamma(mut x: f64) -> f64 {
    let mut shift = 0.0;
    while x < 10.0 {
        shift -= 1.0 / x;
        x += 1.0;
    }
    let inv = 1.0 / x;
    let inv2 = inv * inv;
    shift + x.ln()
        - 0.5 * inv
        - inv2
            * (1.0 / 12.0
                - inv2 * (1.0 / 120.0 - inv2 * (1.0 / 252.0 - inv2 * (1.0 / 240.0 - inv2 / 132.0))))
}

/// `ln ₂F₁(a, b; c; z)` for `a, b, c > 0` and `0 <= z < 1`, summing the Gauss series with a
/// running scale (terms may grow to far beyond `f64` before they decay when `a` and `b` are
/// large), until a term no longer changes the sum. `None` when the series did not settle within
/// its term budget (z very close to 1).
#[must_use]
pub fn ln_hyp2f1(a: f64, b: f64, c: f64, z: f64) -> Option<f64> {
    if !(0.0..1.0).contains(&z) {
        return None;
    }
    if z == 0.0 {
        return Some(0.0);
    }
    const MAX_TERMS: u32 = 2_000_000;
    const RESCALE: f64 = 1e200;
    let mut log_scale = 0.0_f64;
    let mut term = 1.0_f64;
    let mut sum = 1.0_f64;
    for n in 0..MAX_TERMS {
        let n = f64::from(n);
        term *= (a + n) * (b + n) / ((c + n) * (n + 1.0)) * z;
        sum += term;
        if sum > RESCALE {
            sum /= RESCALE;
            term /= RESCALE;
            log_scale += RESCALE.ln();
        }
        // Once the ratio of successive terms is below one, the rest is bounded by a geometric
        // series; stop when that bound is negligible.
        let ratio = (a + n + 1.0) * (b + n + 1.0) / ((c + n + 1.0) * (n + 2.0)) * z;
        if ratio < 1.0 && term.abs() / (1.0 - ratio) <= sum.abs() * 1e-17 {
            return Some(sum.ln() + log_scale);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_gamma_matches_known_values() {
        // Γ(n) = (n-1)!, Γ(1/2) = √π.
        assert!((ln_gamma(1.0)).abs() < 1e-15);
        assert!((ln_gamma(5.0) - 24f64.ln()).abs() < 1e-14);
        assert!((ln_gamma(0.5) - std::f64::consts::PI.sqrt().ln()).abs() < 1e-14);
        assert!((ln_gamma(101.0) - 363.739_375_555_563_47).abs() < 1e-11);
        assert!((ln_gamma(1e-3) - 6.907_178_885_383_853).abs() < 1e-12);
        assert!(ln_gamma(0.0).is_nan());
    }

    #[test]
    fn digamma_matches_known_values_and_the_derivative_of_ln_gamma() {
        // ψ(1) = -γ (Euler-Mascheroni), ψ(1/2) = -γ - 2 ln 2.
        let euler = 0.577_215_664_901_532_9;
        assert!((digamma(1.0) + euler).abs() < 1e-12);
        assert!((digamma(0.5) + euler + 2.0 * 2f64.ln()).abs() < 1e-12);
        for x in [0.01, 0.3, 2.5, 17.0, 400.0] {
            let h = 1e-5 * x;
            let numeric = (ln_gamma(x + h) - ln_gamma(x - h)) / (2.0 * h);
            assert!(
                (digamma(x) - numeric).abs() < 1e-6 * (1.0 + numeric.abs()),
                "x = {x}"
            );
        }
    }

    #[test]
    fn hyp2f1_matches_closed_forms() {
        // ₂F₁(1, 1; 2; z) = -ln(1 - z) / z.
        for z in [0.1_f64, 0.5, 0.9, 0.99] {
            let want = (-(1.0 - z).ln() / z).ln();
            let got = ln_hyp2f1(1.0, 1.0, 2.0, z).unwrap();
            assert!((got - want).abs() < 1e-12, "z = {z}: {got} vs {want}");
        }
        // ₂F₁(a, b; b; z) = (1 - z)^-a, with terms far beyond f64 on the way.
        let got = ln_hyp2f1(900.0, 950.0, 950.0, 0.8).unwrap();
        let want = -900.0 * 0.2f64.ln();
        assert!((got - want).abs() / want < 1e-12, "{got} vs {want}");
        assert_eq!(ln_hyp2f1(1.0, 1.0, 2.0, 1.0), None);
    }
}
