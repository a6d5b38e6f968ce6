mod common;

use adjoint_gradbench::evals::evaluate;
use adjoint_gradbench::evals::llsq::{llsq, llsq_grad};
use common::{assert_close, fd_gradient, uniform};
use serde_json::json;

/// ½ Σᵢ (sᵢ − Σⱼ xⱼ tᵢʲ)² with the powers from `powi`.
fn direct(x: &[f64], n: usize) -> f64 {
    (0..n)
        .map(|i| {
            let t = -1.0 + 2.0 * i as f64 / (n - 1) as f64;
            let s = if t == 0.0 { 0.0 } else { t.signum() };
            let p: f64 = x
                .iter()
                .enumerate()
                .map(|(j, xj)| xj * t.powi(j as i32))
                .sum();
            (s - p).powi(2)
        })
        .sum::<f64>()
        / 2.0
}

#[test]
fn gradient_matches_finite_differences() {
    // Odd n puts a point at t = 0.
    for (n, m) in [(2, 1), (7, 4), (33, 9)] {
        let x = uniform(n as u64, m);
        let (value, grad) = llsq_grad(&x, n);
        assert_eq!(value, llsq(&x, n));
        assert_close(&grad, &fd_gradient(|x| llsq(x, n), &x), 1e-7);
    }
}

#[test]
fn value_matches_the_direct_sum() {
    for (n, m) in [(2, 3), (5, 1), (64, 12)] {
        let x = uniform(7 + n as u64, m);
        let (got, want) = (llsq(&x, n), direct(&x, n));
        assert!(
            (got - want).abs() <= 1e-12 * want.max(1.0),
            "{got} vs {want}"
        );
    }
}

#[test]
fn sign_of_zero_is_zero() {
    // t = -1, 0, 1 and x = 0: ½ (1 + 0 + 1), where sign(0) = 1 would give 1.5.
    assert_eq!(llsq(&[0.0, 0.0], 3), 1.0);
}

#[test]
fn evaluate_answers_the_readme_shapes() {
    let input = json!({"x": [0.5, -0.25, 0.125], "n": 9, "min_runs": 3, "min_seconds": 0});
    let primal = evaluate("llsq", "primal", input.clone()).unwrap();
    assert_eq!(primal.output.as_f64(), Some(llsq(&[0.5, -0.25, 0.125], 9)));
    assert_eq!(primal.timings.len(), 3);
    let gradient = evaluate("llsq", "gradient", input).unwrap();
    let g = gradient.output.as_array().expect("an array");
    assert_eq!(g.len(), 3);
    assert!(g.iter().all(|v| v.is_f64()));
    assert!(evaluate("llsq", "hessian", json!({"x": [1.0], "n": 2})).is_err());
}
