//! The functions of the second-order benchmark: the primals as `#[differentiable]` sees
//! them, their forward and second derivatives written by hand (the floor), the inputs,
//! and the comparison every measured row must pass before it is timed.
//!
//! The peers (num-dual, echidna) live in `benches/peers/`, so that they stay
//! dev-dependencies.

use adjoint::prelude::*;

/// f(x1, x2) = (1 + sin x2) / (x2 + exp x1) + x1 x2
#[differentiable(static, order = 2)]
pub fn seed(x1: f64, x2: f64) -> f64 {
    (x2.sin() + 1.0) / (x2 + x1.exp()) + x1 * x2
}

/// f(x) = Σᵢ₌₀ⁿ⁻² 100 (xᵢ₊₁ - xᵢ²)² + (1 - xᵢ)²
#[differentiable(static, order = 2)]
pub fn rosenbrock(x: &[f64]) -> f64 {
    let mut s = 0.0;
    for i in 0..x.len() - 1 {
        let a = 1.0 - x[i];
        let b = x[i + 1] - x[i] * x[i];
        s += a * a + 100.0 * b * b;
    }
    s
}

/// The seed function's value and directional derivative along (dx1, dx2), forward.
pub fn seed_jvp_hand(x1: f64, x2: f64, dx1: f64, dx2: f64) -> (f64, f64) {
    let e = x1.exp();
    let r = 1.0 / (x2 + e);
    let (s, c) = x2.sin_cos();
    let q = (s + 1.0) * r;
    let dq = (c * dx2 - q * (dx2 + e * dx1)) * r;
    (q + x1 * x2, dq + dx1 * x2 + x1 * dx2)
}

/// The seed function's value, gradient and H·v. With N = 1 + sin x2, d = x2 + exp x1,
/// e = exp x1, q = N / d:
/// f₁₁ = q e / d (2 e / d - 1), f₁₂ = e (2 q / d - cos x2 / d) / d + 1,
/// f₂₂ = -sin x2 / d - 2 cos x2 / d² + 2 q / d².
pub fn seed_hvp_hand(x1: f64, x2: f64, v1: f64, v2: f64) -> (f64, (f64, f64), (f64, f64)) {
    let e = x1.exp();
    let d = x2 + e;
    let (s, c) = x2.sin_cos();
    let q = (s + 1.0) / d;
    let qd = q / d;
    let g = (x2 - qd * e, c / d - qd + x1);
    let h11 = qd * e * (2.0 * e / d - 1.0);
    let h12 = e * (2.0 * qd - c / d) / d + 1.0;
    let h22 = -s / d - 2.0 * c / (d * d) + 2.0 * qd / d;
    let hv = (h11 * v1 + h12 * v2, h12 * v1 + h22 * v2);
    (q + x1 * x2, g, hv)
}

/// Rosenbrock's value and directional derivative along `dx`, forward.
pub fn rosenbrock_jvp_hand(x: &[f64], dx: &[f64]) -> (f64, f64) {
    assert_eq!(x.len(), dx.len());
    let (mut s, mut ds) = (0.0, 0.0);
    let pairs = x.iter().zip(&x[1..]).zip(dx.iter().zip(&dx[1..]));
    for ((&x0, &x1), (&d0, &d1)) in pairs {
        let a = 1.0 - x0;
        let b = x1 - x0 * x0;
        s += a * a + 100.0 * b * b;
        ds += -2.0 * a * d0 + 200.0 * b * (d1 - 2.0 * x0 * d0);
    }
    (s, ds)
}

/// Rosenbrock's value, gradient and H·v in one loop. Term i has the Hessian block
/// [[2 - 400 b + 800 xᵢ², -400 xᵢ], [-400 xᵢ, 200]] on (xᵢ, xᵢ₊₁), b = xᵢ₊₁ - xᵢ²;
/// its share of component i + 1 is carried to the next step.
pub fn rosenbrock_hvp_hand(x: &[f64], v: &[f64]) -> (f64, Vec<f64>, Vec<f64>) {
    let n = x.len();
    assert_eq!(v.len(), n);
    let mut g = vec![0.0; n];
    let mut hv = vec![0.0; n];
    let (mut s, mut g_next, mut hv_next) = (0.0, 0.0, 0.0);
    let pairs = x.iter().zip(&x[1..]).zip(v.iter().zip(&v[1..]));
    for (((&x0, &x1), (&v0, &v1)), (gi, hvi)) in pairs.zip(g.iter_mut().zip(hv.iter_mut())) {
        let a = 1.0 - x0;
        let b = x1 - x0 * x0;
        s += a * a + 100.0 * b * b;
        let h00 = 2.0 - 400.0 * b + 800.0 * x0 * x0;
        let h01 = -400.0 * x0;
        *gi = g_next - 2.0 * a - 400.0 * b * x0;
        *hvi = hv_next + h00 * v0 + h01 * v1;
        g_next = 200.0 * b;
        hv_next = h01 * v0 + 200.0 * v1;
    }
    g[n - 1] = g_next;
    hv[n - 1] = hv_next;
    (s, g, hv)
}

/// The point every row is measured at: xᵢ = 0.5 + 0.4 sin(0.7 i), as in `benches/control.rs`.
pub fn point(n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| 0.5 + 0.4 * ((i as f64) * 0.7).sin())
        .collect()
}

/// The direction of every JVP and HVP: vᵢ = cos(1.3 i + 0.2).
pub fn direction(n: usize) -> Vec<f64> {
    (0..n).map(|i| ((i as f64) * 1.3 + 0.2).cos()).collect()
}

/// The seed function's point and direction.
pub const SEED_X: (f64, f64) = (1.5, 0.5);
/// See [`SEED_X`].
pub const SEED_V: (f64, f64) = (0.3, -0.7);

/// The dimension of the Rosenbrock rows.
pub const N: usize = 1000;

/// The tolerance of [`assert_close`].
pub const TOL: f64 = 1e-9;

/// Panics unless `got` matches `want` to [`TOL`] relative to the larger of 1 and
/// `want`'s largest magnitude (a component near zero is held to the vector's scale).
#[track_caller]
pub fn assert_close(what: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let scale = want.iter().fold(1.0f64, |m, w| m.max(w.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= TOL * scale,
            "{what}[{i}]: {g} against {w} (scale {scale})"
        );
    }
}
