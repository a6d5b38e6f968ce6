mod common;

use adjoint_gradbench::evals::evaluate;
use adjoint_gradbench::evals::particle::{
    euler_f, euler_f_grad, euler_f_jvp, euler_r, euler_r_grad, euler_r_jvp, potential,
    potential_grad, potential_jvp, solve, VARIANTS,
};
use common::{assert_close, fd_gradient};
use serde_json::json;

fn fd(f: impl Fn(f64) -> f64, w: f64) -> f64 {
    fd_gradient(|w| f(w[0]), &[w])[0]
}

#[test]
fn potential_gradient_matches_finite_differences_in_both_modes() {
    let at = [3.0, 6.5, 0.4];
    let (y, g) = potential_grad(at[0], at[1], at[2]);
    assert_eq!(y, potential(at[0], at[1], at[2]));
    let want = fd_gradient(|x| potential(x[0], x[1], x[2]), &at);
    assert_close(&[g.0, g.1, g.2], &want, 1e-8);
    let (_, f0) = potential_jvp(at[0], at[1], at[2], 1.0, 0.0, 0.0);
    let (_, f1) = potential_jvp(at[0], at[1], at[2], 0.0, 1.0, 0.0);
    assert_close(&[f0, f1], &[g.0, g.1], 1e-14);
}

/// The trajectory again, with the field written out: the gradient of 1/|x − c|
/// is −(x − c)/|x − c|³.
fn euler_by_hand(w: f64) -> f64 {
    let charges = [(10.0, 10.0 - w), (10.0, 0.0)];
    let (mut x, mut v) = ((0.0f64, 8.0f64), (0.75f64, 0.0f64));
    loop {
        let mut a = (0.0, 0.0);
        for (c0, c1) in charges {
            let r3 = ((x.0 - c0).powi(2) + (x.1 - c1).powi(2)).powf(1.5);
            a.0 += (x.0 - c0) / r3;
            a.1 += (x.1 - c1) / r3;
        }
        x = (x.0 + 0.1 * v.0, x.1 + 0.1 * v.1);
        if x.1 <= 0.0 {
            let xf = x.0 - x.1 / v.1 * v.0;
            return xf * xf;
        }
        v = (v.0 + 0.1 * a.0, v.1 + 0.1 * a.1);
    }
}

#[test]
fn trajectory_matches_the_field_written_out() {
    for w in [0.0, 0.2, -0.3] {
        let want = euler_by_hand(w);
        assert!((euler_r(w) - want).abs() <= 1e-12 * want.max(1.0));
        assert!((euler_f(w) - want).abs() <= 1e-12 * want.max(1.0));
    }
}

#[test]
fn the_four_outer_derivatives_match_finite_differences_and_each_other() {
    for w in [0.0, 0.2, -0.3] {
        let want = fd(euler_r, w);
        let (y, rr) = euler_r_grad(w);
        assert_eq!(y, euler_r(w));
        let (y, rf) = euler_f_grad(w);
        assert_eq!(y, euler_f(w));
        let (y, fr) = euler_r_jvp(w, 1.0);
        assert_eq!(y, euler_r(w));
        let (y, ff) = euler_f_jvp(w, 1.0);
        assert_eq!(y, euler_f(w));
        assert_close(&[rr, rf, fr, ff], &[want; 4], 1e-6);
        // The modes round differently, by far less than differences see.
        assert_close(&[rf, fr, ff], &[rr; 3], 1e-10);
    }
}

#[test]
fn every_variant_finds_the_eval_s_w() {
    // python/gradbench/gradbench/evals/particle/run.py's expected output, from w = 0.
    let want = 0.2071918746486116;
    let rr = solve("rr", 0.0).unwrap();
    for f in VARIANTS {
        let w = solve(f, 0.0).unwrap();
        assert!((w - want).abs() <= 1e-6, "{f}: {w}");
        assert!((w - rr).abs() <= 1e-9, "{f}: {w} vs rr {rr}");
    }
    // Where descent stopped, x₀(t_f)² is close to its minimum 0.
    assert!(euler_r(rr) < 1e-6, "{}", euler_r(rr));
}

#[test]
fn evaluate_answers_a_number() {
    let out = evaluate("particle", "fr", json!({"w": 0.0, "min_runs": 2})).unwrap();
    assert_eq!(out.timings.len(), 2);
    assert_eq!(out.output.as_f64(), solve("fr", 0.0));
    assert!(evaluate("particle", "r", json!({"w": 0.0})).is_err());
    assert!(evaluate("particle", "rr", json!({"w0": 0.0})).is_err());
}
