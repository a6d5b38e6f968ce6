//! Checks shared by the eval tests: central finite differences of the same
//! objective the tool differentiates, and a relative comparison.
#![allow(dead_code)]

/// Central differences of `f` at `x`, one coordinate at a time, with a step
/// scaled to each coordinate.
pub fn fd_gradient(f: impl Fn(&[f64]) -> f64, x: &[f64]) -> Vec<f64> {
    fd_jacobian_columns(|x| vec![f(x)], x)
        .into_iter()
        .map(|column| column[0])
        .collect()
}

/// Central differences of a vector function: `columns[i]` is ∂f/∂xᵢ.
pub fn fd_jacobian_columns(f: impl Fn(&[f64]) -> Vec<f64>, x: &[f64]) -> Vec<Vec<f64>> {
    let mut x = x.to_vec();
    (0..x.len())
        .map(|i| {
            let xi = x[i];
            let h = 1e-6 * xi.abs().max(1.0);
            x[i] = xi + h;
            let up = f(&x);
            x[i] = xi - h;
            let down = f(&x);
            x[i] = xi;
            up.iter()
                .zip(&down)
                .map(|(u, d)| (u - d) / (2.0 * h))
                .collect()
        })
        .collect()
}

/// `got` and `want` agree elementwise to `tol`, relative to the larger of
/// |want| and 1.
#[track_caller]
pub fn assert_close(got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "lengths differ");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let err = (g - w).abs() / w.abs().max(1.0);
        assert!(
            err <= tol,
            "element {i}: got {g}, want {w} (relative error {err:e})"
        );
    }
}

/// A deterministic pseudo-random sequence in [-1, 1), for test inputs.
pub fn uniform(seed: u64, n: usize) -> Vec<f64> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        })
        .collect()
}
