mod common;

use adjoint_gradbench::evals::det::{det, det_grad};
use adjoint_gradbench::evals::evaluate;
use common::{assert_close, fd_gradient, uniform};
use serde_json::json;

/// The LU factors of the row-major n×n `a` with partial pivoting, in place,
/// and the sign of the row permutation.
fn lu(a: &mut [f64], n: usize, perm: &mut [usize]) -> f64 {
    let mut sign = 1.0;
    for k in 0..n {
        let p = (k..n)
            .max_by(|&i, &j| a[i * n + k].abs().total_cmp(&a[j * n + k].abs()))
            .unwrap();
        if p != k {
            for c in 0..n {
                a.swap(k * n + c, p * n + c);
            }
            perm.swap(k, p);
            sign = -sign;
        }
        for i in k + 1..n {
            let f = a[i * n + k] / a[k * n + k];
            a[i * n + k] = f;
            for c in k + 1..n {
                a[i * n + c] -= f * a[k * n + c];
            }
        }
    }
    sign
}

/// det by Gaussian elimination.
fn det_by_elimination(a: &[f64], n: usize) -> f64 {
    let mut m = a.to_vec();
    let mut perm: Vec<usize> = (0..n).collect();
    let sign = lu(&mut m, n, &mut perm);
    (0..n).map(|k| m[k * n + k]).product::<f64>() * sign
}

/// The cofactor matrix det(A)·A⁻ᵀ, with A⁻¹ from the LU factors.
fn cofactors(a: &[f64], n: usize) -> Vec<f64> {
    let mut m = a.to_vec();
    let mut perm: Vec<usize> = (0..n).collect();
    let sign = lu(&mut m, n, &mut perm);
    let d = (0..n).map(|k| m[k * n + k]).product::<f64>() * sign;
    let mut inv = vec![0.0; n * n];
    for col in 0..n {
        // Solve L U z = P e_col.
        let mut z: Vec<f64> = (0..n)
            .map(|i| f64::from(u8::from(perm[i] == col)))
            .collect();
        for i in 0..n {
            for k in 0..i {
                z[i] -= m[i * n + k] * z[k];
            }
        }
        for i in (0..n).rev() {
            for k in i + 1..n {
                z[i] -= m[i * n + k] * z[k];
            }
            z[i] /= m[i * n + i];
        }
        for i in 0..n {
            inv[i * n + col] = z[i];
        }
    }
    // cof[i, j] = det · inv[j, i]
    (0..n * n)
        .map(|ij| d * inv[(ij % n) * n + ij / n])
        .collect()
}

#[test]
fn value_matches_gaussian_elimination() {
    for n in 1..=7 {
        let a = uniform(n as u64, n * n);
        let (got, want) = (det(&a, n), det_by_elimination(&a, n));
        assert!(
            (got - want).abs() <= 1e-12 * want.abs().max(1.0),
            "ℓ = {n}: {got} vs {want}"
        );
    }
    // A permutation matrix: the sign of (0 2 1 3 → 1 0 3 2), two swaps.
    let mut p = vec![0.0; 16];
    for (r, c) in [(0, 1), (1, 0), (2, 3), (3, 2)] {
        p[r * 4 + c] = 1.0;
    }
    assert_eq!(det(&p, 4), 1.0);
    p.swap(0, 1);
    p.swap(4, 5);
    assert_eq!(det(&p, 4), -1.0);
}

#[test]
fn gradient_matches_finite_differences() {
    for n in 1..=5 {
        let a = uniform(10 + n as u64, n * n);
        let (value, grad) = det_grad(&a, n);
        assert_eq!(value, det(&a, n));
        assert_close(&grad, &fd_gradient(|a| det(a, n), &a), 1e-7);
    }
}

#[test]
fn gradient_is_the_cofactor_matrix() {
    for n in 2..=7 {
        let a = uniform(20 + n as u64, n * n);
        assert_close(&det_grad(&a, n).1, &cofactors(&a, n), 1e-10);
    }
}

#[test]
fn evaluate_answers_the_readme_shapes() {
    let a = uniform(3, 9);
    let input = json!({"A": a, "ell": 3, "min_runs": 2, "min_seconds": 0});
    let primal = evaluate("det", "primal", input.clone()).unwrap();
    assert_eq!(primal.output.as_f64(), Some(det(&a, 3)));
    assert_eq!(primal.timings.len(), 2);
    let gradient = evaluate("det", "gradient", input).unwrap();
    let g = gradient.output.as_array().expect("an array");
    assert_eq!(g.len(), 9);
    assert!(g.iter().all(|v| v.is_f64()));
    let wrong = evaluate("det", "primal", json!({"A": [1.0, 2.0], "ell": 2}));
    assert!(wrong.is_err());
}
