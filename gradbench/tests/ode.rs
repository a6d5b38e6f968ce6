mod common;

use adjoint_gradbench::evals::evaluate;
use adjoint_gradbench::evals::ode::{last_gradient, ode, ode_vjp};
use common::{assert_close, fd_gradient, fd_jacobian_columns, uniform};
use serde_json::json;

/// The exact solution at t = 2: yᵢ = x₀ x₁ ⋯ xᵢ 2^(i+1) / (i+1)!.
fn exact(x: &[f64]) -> Vec<f64> {
    let mut y = Vec::with_capacity(x.len());
    let mut v = 1.0;
    for (i, xi) in x.iter().enumerate() {
        v *= xi * 2.0 / (i + 1) as f64;
        y.push(v);
    }
    y
}

fn positive(seed: u64, n: usize) -> Vec<f64> {
    uniform(seed, n).iter().map(|v| 0.5 + 0.5 * v).collect()
}

#[test]
fn gradient_of_the_last_element_matches_finite_differences() {
    for (n, s) in [(1, 1), (2, 3), (6, 4), (9, 10)] {
        let x = positive(n as u64, n);
        let fd = fd_gradient(|x| ode(x, s)[n - 1], &x);
        assert_close(&last_gradient(&x, s), &fd, 1e-7);
    }
}

#[test]
fn vjp_matches_finite_differences_for_any_seed() {
    let (n, s) = (7, 5);
    let x = positive(3, n);
    let seed = uniform(4, n);
    let (value, grad) = ode_vjp(&x, s, seed.clone());
    assert_eq!(value, ode(&x, s));
    let want: Vec<f64> = fd_jacobian_columns(|x| ode(x, s), &x)
        .iter()
        .map(|col| col.iter().zip(&seed).map(|(c, w)| c * w).sum())
        .collect();
    assert_close(&grad, &want, 1e-7);
}

#[test]
fn value_matches_the_exact_solution() {
    let x = positive(5, 8);
    let want = exact(&x);
    // yᵢ is a polynomial of degree i + 1 in t: RK4 is exact up to degree 4.
    let y = ode(&x, 3);
    assert_close(&y[..4], &want[..4], 1e-13);
    // The rest converges at fourth order.
    let y = ode(&x, 400);
    assert_close(&y, &want, 1e-10);
    // Not beyond: three steps miss y₇ (degree 8) by far more than rounding.
    let miss = (ode(&x, 3)[7] - want[7]).abs() / want[7];
    assert!(miss > 1e-6, "relative miss {miss:e}");
}

#[test]
fn evaluate_answers_the_readme_shapes() {
    let x = positive(6, 5);
    let input = json!({"x": x, "s": 4, "min_runs": 2, "min_seconds": 0});
    let primal = evaluate("ode", "primal", input.clone()).unwrap();
    let y: Vec<f64> = serde_json::from_value(primal.output).unwrap();
    assert_eq!(y, ode(&x, 4));
    assert_eq!(primal.timings.len(), 2);
    let gradient = evaluate("ode", "gradient", input).unwrap();
    let g: Vec<f64> = serde_json::from_value(gradient.output).unwrap();
    assert_eq!(g.len(), 5);
    assert!(evaluate("ode", "primal", json!({"x": [], "s": 1})).is_err());
}
