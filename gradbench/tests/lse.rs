mod common;

use adjoint_gradbench::evals::lse::{logsumexp, logsumexp_grad};
use common::{assert_close, fd_gradient, uniform};

#[test]
fn gradient_matches_finite_differences() {
    let x: Vec<f64> = uniform(1, 17).iter().map(|v| 3.0 * v).collect();
    let (value, grad) = logsumexp_grad(&x);
    assert_eq!(value, logsumexp(&x));
    assert_close(&grad, &fd_gradient(logsumexp, &x), 1e-7);
}

#[test]
fn value_matches_the_direct_sum_and_survives_large_inputs() {
    let x = [0.5, -1.0, 2.0];
    let direct = x.iter().map(|v: &f64| v.exp()).sum::<f64>().ln();
    assert!((logsumexp(&x) - direct).abs() < 1e-14);
    // Shifted by 1000, the direct sum overflows; the objective does not.
    let big: Vec<f64> = x.iter().map(|v| v + 1000.0).collect();
    assert!((logsumexp(&big) - (direct + 1000.0)).abs() < 1e-10);
    let (_, grad) = logsumexp_grad(&big);
    assert!((grad.iter().sum::<f64>() - 1.0).abs() < 1e-14);
}
